export { createVerifier } from './verifier.js';
export { signStandardWebhook } from './standard-webhooks.js';
export type { StandardWebhookMessage } from './standard-webhooks.js';
export { HmacAlgorithms, RejectReasons, Schemes, SignatureEncodings } from './types.js';
export type {
  CommonOptions, GithubConfig, HmacAlgorithm, HmacConfig, Rejected, RejectReason, RequestHeaders, Scheme,
  SignatureEncoding, StandardWebhookHeaders, StandardWebhooksConfig, StripeConfig, Verified, Verifier,
  VerifierConfig, VerifyRequest, VerifyResult,
} from './types.js';
