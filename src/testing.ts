// The test kit's entry point (`import { createTestGateway } from 'portcullis/testing'`).
export {
  createTestGateway,
  type InjectRequest,
  type InjectResponse,
  type TestGateway,
  type TestGatewayConfig,
  type TestGatewayOptions,
} from './embedding/testing.js';
export type { EchoedRequest } from './embedding/echo-upstream.js';
