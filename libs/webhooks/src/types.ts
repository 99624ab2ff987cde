/** Request headers as Node gives them: lower-case names. */
export type RequestHeaders = Record<string, string | string[] | undefined>;

interface Common {
  /** Any of these may match (rotation: old and new at once). At least one. */
  secrets: string[];
  /** Allowed difference between the signed timestamp and now, both ways. Default 300 s. */
  toleranceSec?: number;
  /** Injectable clock for tests; default Date.now. */
  nowMs?: () => number;
}

/** One scheme's settings. */
export type VerifierConfig =
  | (Common & { scheme: 'standard-webhooks' })
  | (Common & { scheme: 'stripe' })
  | (Common & { scheme: 'github' })
  | (Common & {
      scheme: 'hmac';
      /** Header carrying the signature, e.g. `x-signature`. */
      header: string;
      /** Default sha256. */
      algorithm?: 'sha256' | 'sha512' | 'sha1';
      /** Default hex. */
      encoding?: 'hex' | 'base64';
      /** Text before the signature in the header, e.g. `sha256=`. */
      prefix?: string;
      /** Header with the unix-seconds timestamp; when set, it is checked against the tolerance. */
      timestampHeader?: string;
      /** What is signed; `{timestamp}` and `{body}` are replaced. Default `{body}`. */
      signedPayload?: string;
      /** Header with the delivery id, if the provider sends one. */
      deliveryIdHeader?: string;
    });

export type RejectReason = 'missing_header' | 'malformed_header' | 'timestamp_outside_tolerance' | 'signature_mismatch';

/** A verification's result; a rejection is an answer (401), not an exception. */
export type VerifyResult =
  | { ok: true; deliveryId?: string; timestamp?: number; secretIndex: number }
  | { ok: false; reason: RejectReason; detail: string };

export interface Verifier {
  readonly scheme: VerifierConfig['scheme'];
  verify(req: { headers: RequestHeaders; body: Buffer }): VerifyResult;
}
