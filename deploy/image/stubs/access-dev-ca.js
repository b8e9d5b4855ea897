'use strict';
/* global require, exports */
/* eslint-disable @typescript-eslint/no-require-imports -- a CommonJS module, like the compiled file it replaces */
// sealpost-image-stub: replaces @sealpost/access/src/dev-ca in images (deploy/image/compile-tree.mjs).
// Images ship without the development CA: every function refuses. The constants stay, because production code
// (tls-material) uses them to recognise and refuse dev-CA material. Keep them equal to src/dev-ca.ts.
function refuse() {
  const { DevModeRefusedError } = require('./errors');
  throw new DevModeRefusedError('the development CA (not shipped in this image)');
}
Object.defineProperty(exports, '__esModule', { value: true });
exports.DEV_TRUST_DOMAIN = 'sealpost.dev';
exports.DEV_CA_COMMON_NAME = 'Sealpost Development CA';
exports.openDevCa = async function openDevCa() {
  refuse();
};
exports.writeDevTlsFiles = async function writeDevTlsFiles() {
  refuse();
};
