/** The Settlement contract as the pages read it: the shared typed helpers from src/chain. */
export {
  type ClaimedEvent,
  readClaimedEvents,
  readSettledEvents,
  type SettledEvent,
  settlementAbi,
} from '../../chain/client.ts';
