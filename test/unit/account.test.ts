import { describe, expect, it } from 'vitest';
import { BadAccountValue, encodeAccount, parseAccount } from '../../src/accounts/account.js';

describe('the account hash', () => {
  it('parses every field it knows', () => {
    const fields = { enabled: '1', credit_blocked: '1', credit_block_reason: 'projected balance -0.20', balance: '12.50', rate: '0.012', max_channels: '30', route: 'carrier-a' };
    expect(parseAccount('a1', fields)).toEqual({
      id: 'a1', enabled: true, creditBlocked: true, creditBlockReason: 'projected balance -0.20', balance: 12.5, rate: 0.012, maxChannels: 30, route: 'carrier-a',
    });
  });

  it('fills what may be absent: not blocked, not credit-limited, no channel limit, default route', () => {
    expect(parseAccount('a1', { enabled: '0' })).toEqual({ id: 'a1', enabled: false, creditBlocked: false, route: 'default' });
  });

  it('keeps unknown fields out of the way', () => {
    expect(parseAccount('a1', { enabled: '1', portal_note: 'vip' })).toEqual({ id: 'a1', enabled: true, creditBlocked: false, route: 'default' });
  });

  it.each([
    ['enabled missing', { balance: '1' }, 'enabled'],
    ['enabled not 0/1', { enabled: 'yes' }, 'enabled'],
    ['enabled empty', { enabled: '' }, 'enabled'],
    ['credit_blocked garbage', { enabled: '1', credit_blocked: 'true' }, 'credit_blocked'],
    ['balance not a number', { enabled: '1', balance: 'ten' }, 'balance'],
    ['balance NaN', { enabled: '1', balance: 'NaN' }, 'balance'],
    ['balance with spaces', { enabled: '1', balance: ' 1' }, 'balance'],
    ['rate negative', { enabled: '1', rate: '-0.1' }, 'rate'],
    ['max_channels fractional', { enabled: '1', max_channels: '1.5' }, 'max_channels'],
    ['max_channels negative', { enabled: '1', max_channels: '-1' }, 'max_channels'],
    ['route with spaces', { enabled: '1', route: 'a b' }, 'route'],
  ])('refuses %s, naming the field', (_case, fields, field) => {
    expect(() => parseAccount('a1', fields as Record<string, string>)).toThrow(BadAccountValue);
    try {
      parseAccount('a1', fields as Record<string, string>);
    } catch (err) {
      expect((err as BadAccountValue).field).toBe(field);
    }
  });

  it('encodes operator input so that it parses back to the same account', () => {
    const fields = encodeAccount({ enabled: true, credit_blocked: false, balance: 100, rate: '0.01', max_channels: 10, route: 'default' });
    expect(fields).toEqual({ enabled: '1', credit_blocked: '0', balance: '100', rate: '0.01', max_channels: '10', route: 'default' });
    expect(parseAccount('x', fields)).toMatchObject({ enabled: true, creditBlocked: false, balance: 100, rate: 0.01, maxChannels: 10 });
  });
});
