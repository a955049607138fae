export * from './common.js';
export * from './source.js';
export * from './integration.js';
export * from './mapping.js';
export * from './secret.js';
export * from './resources.js';
export * from './validate.js';
export { renderCrds, toStructural } from './crds.js';
