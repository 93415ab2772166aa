/** A request the coordinator refuses: an HTTP 4xx with a reason the client can show, never a crash. */
export class Refusal extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 409 | 410 | 413 | 422 | 429,
    readonly reason: string,
    /** For 429: when to ask again (sent as Retry-After). */
    readonly retryAfterSeconds?: number,
  ) {
    super(reason);
    this.name = 'Refusal';
  }
}

/** A zod error as one line naming each field: `model.hidden.0.units: too big; …`. */
export function zodReason(error: {
  issues: ReadonlyArray<{ path: PropertyKey[]; message: string }>;
}): string {
  return error.issues.map((i) => `${i.path.map(String).join('.') || 'body'}: ${i.message}`).join('; ');
}
