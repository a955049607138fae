/** HTTP status of a failed client-node request (ApiException.code), if any. */
export function statusCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** The object does not exist (HTTP 404). */
export function isNotFound(error: unknown): boolean {
  return statusCode(error) === 404;
}

/** A write lost an optimistic-concurrency race or the object already exists (HTTP 409). */
export function isConflict(error: unknown): boolean {
  return statusCode(error) === 409;
}

/** The Status message the API server sent with a failed request, else the error's message. */
export function apiMessage(error: unknown): string {
  const body = (error as { body?: unknown } | null)?.body;
  if (typeof body === 'string') {
    try {
      const parsed = JSON.parse(body) as { message?: string };
      if (parsed.message) return parsed.message;
    } catch {
      // not JSON: fall through
    }
  } else if (body && typeof body === 'object' && typeof (body as { message?: unknown }).message === 'string') {
    return (body as { message: string }).message;
  }
  return error instanceof Error ? error.message : String(error);
}
