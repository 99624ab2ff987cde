export { TokenError } from './errors.js';
export { requestGrant } from './grant.js';
export type { GrantAnswer, GrantRequest } from './grant.js';
export { DEMO_TOKEN_KEY, loadTokenKeys } from './seal.js';
export type { TokenKey, TokenKeys } from './seal.js';
export { installRefreshToken, readTokens, tokenKey, tokenState } from './store.js';
export type { TokenEntry, TokenRecord, TokenState } from './store.js';
export { createTokenProvider } from './tokens.js';
export type { OAuth2Config, TokenProvider, TokenProviderOptions } from './tokens.js';
