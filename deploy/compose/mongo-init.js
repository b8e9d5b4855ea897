/* eslint-disable no-undef, @typescript-eslint/no-require-imports -- a mongosh script: `db` and `require` are its globals */
// MongoDB init for the laptop stack (mongosh, run once by the mongo image on an empty data volume):
// one user per service, limited to that service's database; passwords from the mounted secret files.
const fs = require('fs');
const users = { 'contact-vault': 'sealpost_contact_vault', audit: 'sealpost_audit' };
const admin = db.getSiblingDB('admin');
for (const [user, database] of Object.entries(users)) {
  const pwd = fs.readFileSync(`/run/secrets/mongo_${user.replace(/-/g, '_')}_password`, 'utf8').trim();
  admin.createUser({ user, pwd, roles: [{ role: 'readWrite', db: database }] });
}
admin.adminCommand({ setDefaultRWConcern: 1, defaultWriteConcern: { w: 'majority', j: true } });
