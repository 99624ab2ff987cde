export { createVerifier, signStandardWebhook } from './schemes.js';
export type { RejectReason, RequestHeaders, Verifier, VerifierConfig, VerifyResult } from './types.js';
