import { InvalidArgumentError } from '../errors';
import { parseMultiHostConnectionString } from './connection-string';

describe('parseMultiHostConnectionString', () => {
  it('reads a URI with several hosts, ports per host and target_session_attrs', () => {
    expect(
      parseMultiHostConnectionString(
        'postgres://app:s%40cret@db1.internal:5433,db2.internal,[::1]:6000/shop%20db?target_session_attrs=read-write&connect_timeout=3&application_name=api',
      ),
    ).toEqual({
      hosts: [
        { host: 'db1.internal', port: 5433 },
        { host: 'db2.internal', port: 5432 },
        { host: '::1', port: 6000 },
      ],
      user: 'app',
      password: 's@cret',
      database: 'shop db',
      targetSessionAttrs: 'read-write',
      connectTimeoutMs: 3000,
      ssl: undefined,
      applicationName: 'api',
    });
  });

  it('reads the keyword form, one port for every host or one each, quoted values', () => {
    expect(
      parseMultiHostConnectionString(
        "host=a,b port=5432 dbname=app user=u password='it\\'s \\\\ here' target_session_attrs=primary sslmode=require",
      ),
    ).toMatchObject({
      hosts: [
        { host: 'a', port: 5432 },
        { host: 'b', port: 5432 },
      ],
      user: 'u',
      password: "it's \\ here",
      database: 'app',
      targetSessionAttrs: 'primary',
      ssl: { rejectUnauthorized: false },
    });
    expect(parseMultiHostConnectionString('host=a,b port=1,2').hosts).toEqual([
      { host: 'a', port: 1 },
      { host: 'b', port: 2 },
    ]);
  });

  it('defaults: localhost:5432, any session, no TLS setting', () => {
    expect(parseMultiHostConnectionString('postgresql:///app')).toEqual({
      hosts: [{ host: 'localhost', port: 5432 }],
      user: undefined,
      password: undefined,
      database: 'app',
      targetSessionAttrs: 'any',
      connectTimeoutMs: undefined,
      ssl: undefined,
      applicationName: undefined,
    });
    expect(parseMultiHostConnectionString('postgres://db:5432/x?sslmode=verify-full').ssl).toEqual({
      rejectUnauthorized: true,
    });
    expect(parseMultiHostConnectionString('postgres://db/x?sslmode=disable').ssl).toBe(false);
  });

  it.each([
    ['postgres://a,b/x?target_session_attrs=writable', /target_session_attrs "writable"/],
    ['postgres://a/x?sslrootcert=/ca.pem', /parameter "sslrootcert" is not supported/],
    ['postgres://a:99999/x', /bad host "a:99999"/],
    ['host=a,b,c port=1,2', /2 ports for 3 hosts/],
    ['postgres://a/x?connect_timeout=0', /connect_timeout "0"/],
    ['postgres://a/x?sslmode=maybe', /sslmode "maybe"/],
    ['host=a port', /cannot read/],
  ])('refuses %s with a clear error', (text, message) => {
    expect(() => parseMultiHostConnectionString(text)).toThrow(InvalidArgumentError);
    expect(() => parseMultiHostConnectionString(text)).toThrow(message);
  });
});
