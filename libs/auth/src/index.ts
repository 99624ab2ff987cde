export { createTokenProvider, TokenError } from './tokens.js';
export type { OAuth2Config, TokenProvider, TokenProviderOptions } from './tokens.js';
