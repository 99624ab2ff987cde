export { createTransformer, transformDurable } from './transformer.js';
export type { Transformer, TransformerOptions } from './transformer.js';
export { createTransformMetrics } from './metrics.js';
export type { TransformMetrics } from './metrics.js';
