/**
 * RFC 7512 pkcs11: URIs: the RFC's own examples, %-decoding (ids are bytes),
 * what is refused (a PIN in any form, malformed escapes, repeated attributes)
 * and what is ignored with a warning (vendor attributes).
 */
import t from 'tap';
import { KeyBackendError } from '../daemon/keys/errors.js';
import { Pkcs11Signer } from '../daemon/keys/pkcs11/signer.js';
import { formatPkcs11Uri, parsePkcs11Uri } from '../daemon/keys/pkcs11/uri.js';

function refusal(uri: string): KeyBackendError | undefined {
  try {
    parsePkcs11Uri(uri);
    return undefined;
  } catch (err) {
    return err as KeyBackendError;
  }
}

t.test('uri: the examples of RFC 7512 section 3.3', async (t) => {
  t.same(parsePkcs11Uri('pkcs11:'), { warnings: [] }, 'the empty URI');
  t.same(parsePkcs11Uri('pkcs11:object=my-pubkey;type=public'), { object: 'my-pubkey', type: 'public', warnings: [] });
  const full = parsePkcs11Uri(
    'pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;model=1.0;' +
      'object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BD%EC%91;serial=',
  );
  t.equal(full.token, 'The Software PKCS#11 Softtoken');
  t.equal(full.manufacturer, 'Snake Oil, Inc.');
  t.equal(full.model, '1.0');
  t.equal(full.object, 'my-certificate');
  t.equal(full.type, 'cert');
  t.same(Buffer.from(full.id!), Buffer.from('69953e5cf4bdec91', 'hex'), 'id decoded to raw bytes');
  t.equal(full.serial, '', 'an empty value is kept as empty');
  t.equal(
    parsePkcs11Uri('pkcs11:token=A%20name%20with%20a%20substring%20%25%3B;object=my-certificate;type=cert').token,
    'A name with a substring %;',
  );
  t.equal(
    parsePkcs11Uri('pkcs11:token=Name%20with%20a%20small%20A%20with%20acute:%20%C3%A1;object=my-certificate;type=cert').token,
    'Name with a small A with acute: á',
  );
  const lib = parsePkcs11Uri(
    'pkcs11:slot-description=Sun%20Metaslot;library-manufacturer=Snake%20Oil,%20Inc.;library-version=1.0;slot-id=1',
  );
  t.equal(lib.slotDescription, 'Sun Metaslot');
  t.equal(lib.libraryManufacturer, 'Snake Oil, Inc.');
  t.equal(lib.libraryVersion, '1.0');
  t.equal(lib.slotId, 1);
  const mod = parsePkcs11Uri('pkcs11:token=credport;object=device?module-path=/usr/lib/softhsm/libsofthsm2.so');
  t.equal(mod.modulePath, '/usr/lib/softhsm/libsofthsm2.so', 'module-path is accepted');
});

t.test('uri: a PIN is refused in every form, and never echoed', async (t) => {
  for (const uri of [
    'pkcs11:object=my-key;type=private?pin-source=file:/etc/token',
    'pkcs11:token=credport;object=device?pin-value=S3CRET',
    'pkcs11:token=credport?module-path=/x.so&pin-value=S3CRET',
    'pkcs11:token=my-token;object=my-certificate;type=cert;vendor-aaa=value-a?pin-source=file:/etc/token&vendor-bbb=value-b',
  ]) {
    const err = refusal(uri);
    t.type(err, KeyBackendError, uri.replace(/S3CRET/g, '***'));
    t.equal(err?.code, 'INVALID_ARGUMENT');
    t.match(err?.message ?? '', /never put a PIN in a URI/);
    t.notMatch(err?.message ?? '', /S3CRET|\/etc\/token/, 'the value is not quoted');
  }
});

t.test('uri: malformed and repeated attributes are refused; vendor ones warned about', async (t) => {
  for (const [uri, why] of [
    ['https://example.com/', 'another scheme'],
    ['pkcs11:token=a;token=b', 'a repeated path attribute'],
    ['pkcs11:id=%zz', 'a malformed escape'],
    ['pkcs11:id=%4', 'a truncated escape'],
    ['pkcs11:token=%ff%fe', 'a value that is not UTF-8'],
    ['pkcs11:type=secret', 'an unknown type'],
    ['pkcs11:slot-id=one', 'a slot-id that is no number'],
    ['pkcs11:tokencredport', 'an attribute without ='],
    ['pkcs11:token=a?module-path=/a&module-path=/b', 'a repeated query attribute'],
  ] as const) {
    t.equal(refusal(uri)?.code, 'INVALID_ARGUMENT', why);
  }
  t.equal(parsePkcs11Uri('PKCS11:token=x').token, 'x', 'the scheme is case-insensitive');
  const vendor = parsePkcs11Uri('pkcs11:token=x;x-vendor=1?module-name=softhsm2&x-other=2');
  t.equal(vendor.token, 'x');
  t.equal(vendor.warnings.length, 3, 'one warning per ignored attribute');
  t.match(vendor.warnings.join('\n'), /x-vendor/);
  t.same(parsePkcs11Uri('pkcs11:token=a;;object=b;').object, 'b', 'empty attributes are tolerated');
});

t.test('uri: format and parse round-trip', async (t) => {
  const id = Uint8Array.from([0x00, 0x0a, 0xff, 0x3b]);
  const uri = formatPkcs11Uri({ token: 'My Token;1', serial: '769c', object: 'dévice', id });
  t.match(uri, /^pkcs11:token=My%20Token%3b1;serial=769c;object=d%c3%a9vice;id=%00%0a%ff%3b;type=private$/);
  const back = parsePkcs11Uri(uri);
  t.equal(back.token, 'My Token;1');
  t.equal(back.object, 'dévice');
  t.same(Buffer.from(back.id!), Buffer.from(id));
});

t.test('uri: the signer refuses what a URI cannot mean, before touching any module', async (t) => {
  const base = { module: '/nonexistent/module.so', pin: { env: 'UNSET' } };
  for (const [uri, why] of [
    ['pkcs11:token=credport;object=cert;type=cert', 'a certificate is not a key pair'],
    ['pkcs11:token=credport;object=x?module-path=/other.so', 'two different module paths'],
  ] as const) {
    await t.rejects(Pkcs11Signer.open({ ...base, uri }, {}), { name: 'KeyBackendError', code: 'INVALID_ARGUMENT' }, why);
  }
  await t.rejects(
    Pkcs11Signer.open({ ...base, tokenLabel: 'a', uri: 'pkcs11:token=b;object=x' }, {}),
    { code: 'INVALID_ARGUMENT', message: /token label is given twice/ },
    'token label in options and URI disagree',
  );
});
