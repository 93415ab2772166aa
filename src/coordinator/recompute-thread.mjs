// Worker threads do not inherit the parent's programmatic tsx registration: register it here,
// then load the TypeScript thread body.
import { register } from 'tsx/esm/api';

register();
await import('./recompute-thread.ts');
