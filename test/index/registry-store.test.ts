import { Registry } from '../../src/index/registry.js';
import { describeStoreContract } from './store-contract.js';

describeStoreContract('Registry (in memory)', { make: async (options) => new Registry(options) });
