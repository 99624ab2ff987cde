// What the runner posts: one event type, N entities × V versions.

/**
 * How the runner makes events for a catalog. A catalog module (BUS_CATALOG) may export one as
 * `conformance`; without it the runner posts `contact.updated` (the demo's schema).
 */
export interface ConformanceProfile {
  /** The `source` of POST /events. */
  source: string;
  /** The event type posted; its schema must be in the catalog. */
  eventType: string;
  /** The entity type of every event. */
  entityType: string;
  /** The event's data for version `version` of entity `entityId`; must pass the catalog's schema. */
  data(entityId: string, version: number): Record<string, unknown>;
  /** The target record an entity's commands write, `<type>/<id>` as the target records it. Default `<entityType>/<entityId>`. */
  targetKey?(entityId: string): string;
  /** Connectors checked; default every `http` connector subscribed to `eventType`. */
  connectors?: string[];
}

/** contact.updated as the demo schema (ContactUpdated) wants it; the name and email carry the version. */
export const contactProfile: ConformanceProfile = {
  source: 'chaos',
  eventType: 'contact.updated',
  entityType: 'contact',
  data: (id, version) => ({ id, version, email: `${id}.v${version}@example.com`, name: `Contact ${id} v${version}` }),
};
