// The AWS SDK for Go v2 (Debian's 1.17, config module 1.17.10), unmodified, gets the emulator's
// credentials through credport on both endpoints it supports: the ECS container endpoint (full URI,
// inline token: this release knows no token file) and IMDSv2, each found by config.LoadDefaultConfig's
// chain from the environment alone.

import { goSdkV2 } from './helpers/go-client.js';
import { goSdkSuite } from './helpers/go-sdk-suite.js';

await goSdkSuite('Go SDK v2', 'go-sdk-v2', goSdkV2);
