/** The signature schemes a verifier can check; `VerifierConfig['scheme']` is one of these. */
export const Schemes = ['standard-webhooks', 'stripe', 'github', 'hmac'] as const;
/** One of {@link Schemes}. */
export type Scheme = (typeof Schemes)[number];

/**
 * Why a request was refused. Stable values: ingest answers 401 and counts by reason, so a
 * metric can be created per value up front.
 */
export const RejectReasons = ['missing_header', 'malformed_header', 'timestamp_outside_tolerance', 'signature_mismatch'] as const;
/** One of {@link RejectReasons}. */
export type RejectReason = (typeof RejectReasons)[number];

/** HMAC algorithms the generic scheme accepts. */
export const HmacAlgorithms = ['sha256', 'sha512', 'sha1'] as const;
/** One of {@link HmacAlgorithms}. */
export type HmacAlgorithm = (typeof HmacAlgorithms)[number];

/** How the generic scheme's signature is written in its header. */
export const SignatureEncodings = ['hex', 'base64'] as const;
/** One of {@link SignatureEncodings}. */
export type SignatureEncoding = (typeof SignatureEncodings)[number];

/**
 * Request headers as Node's `IncomingMessage.headers` gives them: lower-case names, a string
 * per header (Node joins repeated headers with `", "`), an array only for a few (`set-cookie`).
 */
export type RequestHeaders = Record<string, string | string[] | undefined>;

/** Settings every scheme shares. */
export interface CommonOptions {
  /**
   * Required, at least one. Any of them may match, so a secret is rotated by listing old and
   * new together (the result's `secretIndex` says which matched). Never logged or echoed.
   */
  secrets: string[];
  /**
   * Largest allowed difference, in seconds, between the signed timestamp and now, in both
   * directions (old replays and clocks running ahead). Default 300. Unused by schemes
   * without a timestamp (github; hmac without `timestampHeader`).
   */
  toleranceSec?: number;
  /** The clock, in unix milliseconds. Default `Date.now`; tests inject a fixed one. */
  nowMs?: () => number;
}

/** Standard Webhooks (standardwebhooks.com, Svix): secrets are `whsec_<base64>`. */
export interface StandardWebhooksConfig extends CommonOptions {
  scheme: 'standard-webhooks';
}

/** Stripe (`Stripe-Signature: t=…,v1=…`): secrets are the endpoint's `whsec_…` string, used as is. */
export interface StripeConfig extends CommonOptions {
  scheme: 'stripe';
}

/** GitHub (`X-Hub-Signature-256: sha256=<hex>`): the webhook's secret as typed in GitHub. */
export interface GithubConfig extends CommonOptions {
  scheme: 'github';
}

/** Any provider signing the body (and optionally a timestamp) with one HMAC in one header. */
export interface HmacConfig extends CommonOptions {
  scheme: 'hmac';
  /** Required: the header carrying the signature, e.g. `x-signature` (matched case-insensitively). */
  header: string;
  /** Default `sha256`. */
  algorithm?: HmacAlgorithm;
  /** Default `hex`. */
  encoding?: SignatureEncoding;
  /** Text before the signature in the header, e.g. `sha256=`. Default none. */
  prefix?: string;
  /**
   * Header with the unix-seconds timestamp. When set, it is checked against `toleranceSec`
   * and `signedPayload` must contain `{timestamp}` (an unsigned timestamp stops no replay).
   */
  timestampHeader?: string;
  /**
   * What is signed: `{body}` (exactly once, the raw bytes) and `{timestamp}` (the header's
   * text) are replaced, everything else is literal. Default `{body}`.
   */
  signedPayload?: string;
  /** Header with the provider's delivery id, returned as `deliveryId`. Default none. */
  deliveryIdHeader?: string;
}

/** One source's verification settings, by scheme. Checked by `createVerifier`. */
export type VerifierConfig = StandardWebhooksConfig | StripeConfig | GithubConfig | HmacConfig;

/** What a verifier is given: the headers and the body exactly as received. */
export interface VerifyRequest {
  headers: RequestHeaders;
  /** The raw request body bytes, before any JSON parsing. */
  body: Buffer;
}

/** An accepted request. */
export interface Verified {
  ok: true;
  /**
   * The provider's id for this delivery, when the scheme carries one in a header
   * (`webhook-id`, `X-GitHub-Delivery`, the hmac `deliveryIdHeader`). Undefined for Stripe:
   * its event id is the body's `id` field, read by the caller from the parsed payload.
   */
  deliveryId?: string;
  /** The signed timestamp, unix seconds, for schemes that sign one. */
  timestamp?: number;
  /** Index into `secrets` of the secret that matched (rotation metrics: is the old one still used?). */
  secretIndex: number;
}

/** A refused request: an ordinary answer (401), not an exception. */
export interface Rejected {
  ok: false;
  reason: RejectReason;
  /** For logs: which header and what was wrong. Never holds a secret or a signature. */
  detail: string;
}

/** The outcome of one verification. */
export type VerifyResult = Verified | Rejected;

/** Checks requests of one source. Built once at start-up by `createVerifier`, then pure. */
export interface Verifier {
  readonly scheme: Scheme;
  /** Verifies one request; never throws for a bad request, only for a body that is not bytes. */
  verify(request: VerifyRequest): VerifyResult;
}

/** The headers of an outbound Standard Webhooks request. */
export interface StandardWebhookHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}
