/**
 * Runs before every test file (jest.config.js `setupFiles`). Keep it cheap: no I/O, no peer probes — those
 * happen lazily in `describeWithPeer`, and only in files that ask for a peer.
 */

// The AWS SDK warns on every client construction under Node 20; the notice is noise in test output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
