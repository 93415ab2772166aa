/** A request the coordinator refuses: an HTTP 4xx with a reason the client can show, never a crash. */
export class Refusal extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 409 | 410 | 413 | 422,
    readonly reason: string,
  ) {
    super(reason);
    this.name = 'Refusal';
  }
}
