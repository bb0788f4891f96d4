import { Registry } from '../../src/index/registry.js';
import { describeStoreContract } from './store-contract.js';

describeStoreContract('Registry (in memory)', { make: (options) => Promise.resolve(new Registry(options)) });
