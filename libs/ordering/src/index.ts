export { appliedVersion } from './applied.js';
export { FOLD_MARK_LEAD_MS, FOLD_PARTITIONS, foldIdleVersions, marksKeyOf, partitionKeyOf, startFolder } from './fold.js';
export type { FolderOptions, FoldOptions, FoldResult } from './fold.js';
export { createOrderingGuard } from './guard.js';
export type { Begin, GuardedCommand, GuardOptions, LookupResult, OrderingGuard, OrderingMode, Token, VersionKind } from './guard.js';
export { ENTITY_VERSION_HEADER, pendingVersions } from './pending.js';
