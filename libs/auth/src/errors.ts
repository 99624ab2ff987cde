import { BusError } from '@bus/errors';

/** A token could not be had: its class says what happens next; its code is listed in docs/errors.md (AUTH_*). */
export class TokenError extends BusError {}
