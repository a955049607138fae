/** The platform-free core shared by the browser tag and the Node SDK. */
export * from './config.js';
export * from './uuid.js';
export * from './backoff.js';
export * from './batch.js';
export * from './event.js';
export * from './snippet.js';
