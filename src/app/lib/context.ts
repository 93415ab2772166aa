/** What every page may read: the coordinator client and, once it answered, its /info. */
import { createContext, useContext } from 'react';
import type { CoordinatorApi, Info } from './api.ts';

export interface AppContextValue {
  api: CoordinatorApi;
  info?: Info;
  infoError?: string;
}

export const AppContext = createContext<AppContextValue | undefined>(undefined);

export function useApp(): AppContextValue {
  const value = useContext(AppContext);
  if (!value) throw new Error('useApp outside <AppContext.Provider>');
  return value;
}

/** For pages that only render once /info is known (they sit under the WagmiProvider). */
export function useInfo(): Info {
  const { info } = useApp();
  if (!info) throw new Error('useInfo before the coordinator answered /info');
  return info;
}
