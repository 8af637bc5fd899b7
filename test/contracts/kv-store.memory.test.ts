// Runs the KvStore contract against the in-process memory store.
import { MemoryKvStore } from '../../src/kv/memory.js';
import { kvStoreContract } from './kv-store.contract.js';

kvStoreContract('memory', async () => {
  const store = new MemoryKvStore();
  return {
    store,
    bucketTtlMs: async (key) => store.bucketTtlMs(key),
    settle: async () => {
      store.sweep();
    },
    cleanup: () => store.close(),
  };
});
