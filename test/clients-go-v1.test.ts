// The AWS SDK for Go v1 (Debian's 1.44), unmodified, gets the emulator's credentials through credport
// on both endpoints it supports: the ECS container endpoint (full URI, inline token: 1.44 knows no
// token file) and IMDSv2, each found by the SDK's default chain from the environment alone.

import { goSdkV1 } from './helpers/go-client.js';
import { goSdkSuite } from './helpers/go-sdk-suite.js';

await goSdkSuite('Go SDK v1', 'go-sdk-v1', goSdkV1);
