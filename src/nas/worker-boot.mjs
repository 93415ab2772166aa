// Entry of a training worker thread: worker threads do not inherit the parent's tsx loader, so
// register it here before loading the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
await import('./train-worker.ts');
