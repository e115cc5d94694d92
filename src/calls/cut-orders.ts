import { z } from 'zod';

/**
 * The controller's orders to end calls whose account ran out of credit, one hash per edge
 * process (`calls:cut:{node}:{instance}`, src/redis/keys.ts): Call-ID -> the order, as JSON. The
 * controller writes an order with its audit entry in one fenced batch; the edge that carries the
 * call ends it (a BYE to each party) and ends its record, and the Lua step that removes the record
 * removes the order with it (src/calls/records.ts), so an order lives exactly as long as its call.
 */
export interface CutOrder {
  /** The account whose evidence the order is on: the edge cuts only a call of that account. */
  account: string;
  /** When the controller decided (ms since epoch): the edge measures the cut's latency from it. */
  decidedAt: number;
  controller: string;
}

const cutOrderSchema = z.object({ account: z.string().min(1), decidedAt: z.number(), controller: z.string() });

export function encodeCutOrder(order: CutOrder): string {
  return JSON.stringify(order);
}

/** undefined when it does not parse: such an order is never acted on. */
export function parseCutOrder(raw: string): CutOrder | undefined {
  try {
    const parsed = cutOrderSchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
