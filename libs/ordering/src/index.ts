export { appliedVersion } from './applied.js';
export { FOLD_PARTITIONS, foldIdleVersions, partitionKeyOf, startFolder } from './fold.js';
export type { FoldCursor, FolderOptions, FoldOptions, FoldResult } from './fold.js';
export { createOrderingGuard } from './guard.js';
export type { Begin, GuardedCommand, GuardOptions, LookupResult, OrderingGuard, OrderingMode, Token, VersionKind } from './guard.js';
export { ENTITY_VERSION_HEADER, pendingVersions } from './pending.js';
