import { BusError } from '@bus/errors';
import { type FieldIssue, toFieldIssues } from '@bus/envelope';
import type { z } from 'zod';

/** `order.created@1`: an event type and the version of its data's schema. */
export const schemaKey = (type: string, version: number) => `${type}@${version}`;

/** The result of validating an event's data: valid, valid with drift, or invalid. */
export type Validation =
  | { kind: 'valid'; data: Record<string, unknown> }
  | { kind: 'drift'; data: Record<string, unknown>; unknownFields: string[] }
  | { kind: 'invalid'; issues: FieldIssue[] };

/**
 * Dotted paths of keys present in `input` that the parse dropped (a z.object strips unknown keys). One path
 * array, pushed and popped, joined only for a dropped key: this runs over every event's data on transform's path.
 */
function droppedKeys(input: unknown, output: unknown, path: string[] = [], out: string[] = []): string[] {
  if (Array.isArray(input) && Array.isArray(output)) {
    for (let i = 0; i < input.length; i++) {
      path.push(String(i));
      droppedKeys(input[i], output[i], path, out);
      path.pop();
    }
    return out;
  }
  if (!input || !output || typeof input !== 'object' || typeof output !== 'object') return out;
  for (const k in input) {
    if (!Object.hasOwn(input, k)) continue;
    path.push(k);
    if (!(k in output)) out.push(path.join('.'));
    else droppedKeys((input as Record<string, unknown>)[k], (output as Record<string, unknown>)[k], path, out);
    path.pop();
  }
  return out;
}

/**
 * The schemas of every event type and version the bus maps. Unknown fields are drift (the
 * event still flows; use z.object so they are noticed, z.looseObject to accept them
 * silently); a missing or wrong required field is invalid.
 */
export class SchemaRegistry {
  private readonly schemas = new Map<string, z.ZodType>();

  add(type: string, version: number, schema: z.ZodType): this {
    const key = schemaKey(type, version);
    if (this.schemas.has(key)) throw new BusError('SCHEMA_DUPLICATE', 'permanent', `event schema ${key} is declared twice`);
    this.schemas.set(key, schema);
    return this;
  }

  has(type: string, version?: number): boolean {
    if (version !== undefined) return this.schemas.has(schemaKey(type, version));
    for (const k of this.schemas.keys()) if (k.startsWith(`${type}@`)) return true;
    return false;
  }

  validate(type: string, version: number, data: unknown): Validation {
    const schema = this.schemas.get(schemaKey(type, version));
    if (!schema) return { kind: 'invalid', issues: [{ path: '(schema)', message: `no schema for ${schemaKey(type, version)}: declare it in the catalog` }] };
    const parsed = schema.safeParse(data);
    if (!parsed.success) return { kind: 'invalid', issues: toFieldIssues(parsed.error.issues) };
    const unknownFields = droppedKeys(data, parsed.data);
    const out = parsed.data as Record<string, unknown>;
    return unknownFields.length ? { kind: 'drift', data: out, unknownFields } : { kind: 'valid', data: out };
  }

  keys(): string[] {
    return [...this.schemas.keys()];
  }
}
