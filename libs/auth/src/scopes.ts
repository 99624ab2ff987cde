/**
 * The required scopes a token lacks. `granted` undefined (the provider did not say, and none was requested):
 * nothing can be checked here, so nothing is reported missing — the target's 403 stays the last word.
 */
export function missingScopes(required: readonly string[] | undefined, granted: readonly string[] | undefined): string[] {
  if (!required?.length || granted === undefined) return [];
  const have = new Set(granted);
  return required.filter((s) => !have.has(s));
}

/** What /readyz and the logs say about a token granted without required scopes: which connector, which scopes, what to do. */
export function scopeProblem(connector: string, missing: readonly string[], granted: readonly string[] | undefined): string {
  return `[AUTH_SCOPE_MISSING] connector "${connector}": the access token was granted without the required scope${missing.length > 1 ? 's' : ''} ` +
    `${missing.join(', ')} (granted: ${granted?.length ? granted.join(' ') : 'none'}); nothing is sent to the target until a token has ${missing.length > 1 ? 'them' : 'it'}. ` +
    'Grant the scope to the client at the provider (or consent again with it); the next token refresh is checked again';
}
