'use strict';
/* global require, exports */
/* eslint-disable @typescript-eslint/no-require-imports -- a CommonJS module, like the compiled file it replaces */
// sealpost-image-stub: replaces @sealpost/access/src/dev-token in images (deploy/image/compile-tree.mjs).
// Images ship without the development token issuer: every function refuses. The issuer and audience constants
// stay (production code pins and refuses the dev issuer by them); they come from dev-issuer-constants, lazily.
function refuse() {
  const { DevModeRefusedError } = require('./errors');
  throw new DevModeRefusedError('development operator tokens (not shipped in this image)');
}
Object.defineProperty(exports, '__esModule', { value: true });
for (const name of ['DEV_ISSUER', 'DEFAULT_AUDIENCE']) {
  Object.defineProperty(exports, name, { enumerable: true, get: () => require('./dev-issuer-constants')[name] });
}
exports.openDevTokenIssuer = async function openDevTokenIssuer() {
  refuse();
};
exports.issueDevToken = async function issueDevToken() {
  refuse();
};
