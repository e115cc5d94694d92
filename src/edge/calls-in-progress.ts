/**
 * Calls in progress per account, as this edge counts them: a call counts from the moment it is
 * routed until its attempt fails or, once answered, until it ends. (The credit controller's
 * records on the master replace this count when it lands; see the controller issue.)
 */
export class LocalCallsInProgress {
  private readonly byAccount = new Map<string, Set<string>>();
  private readonly accountOf = new Map<string, string>();

  count(accountId: string): number {
    return this.byAccount.get(accountId)?.size ?? 0;
  }

  add(accountId: string, callId: string): void {
    let calls = this.byAccount.get(accountId);
    if (!calls) this.byAccount.set(accountId, (calls = new Set()));
    calls.add(callId);
    this.accountOf.set(callId, accountId);
  }

  /** Whether the call is routed or answered and not ended. */
  has(callId: string): boolean {
    return this.accountOf.has(callId);
  }

  /** Ends a call, whichever account it was; unknown Call-IDs are ignored. */
  end(callId: string): void {
    const accountId = this.accountOf.get(callId);
    if (accountId === undefined) return;
    this.accountOf.delete(callId);
    const calls = this.byAccount.get(accountId)!;
    calls.delete(callId);
    if (calls.size === 0) this.byAccount.delete(accountId);
  }

  /** Ends every call; returns their Call-IDs. */
  endAll(): string[] {
    const callIds = [...this.accountOf.keys()];
    this.byAccount.clear();
    this.accountOf.clear();
    return callIds;
  }

  get total(): number {
    return this.accountOf.size;
  }
}
