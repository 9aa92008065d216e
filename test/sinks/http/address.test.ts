import { parseListenAddress } from '../../../sinks/http/address';

test.each([
  ['9464', { host: '127.0.0.1', port: 9464 }],
  [':9464', { host: '127.0.0.1', port: 9464 }],
  ['0.0.0.0:80', { host: '0.0.0.0', port: 80 }],
  ['localhost:0', { host: 'localhost', port: 0 }],
  ['[::1]:9464', { host: '::1', port: 9464 }],
])('%s listens on %o', (text, want) => {
  expect(parseListenAddress(text)).toEqual(want);
});

test.each(['', 'host', '127.0.0.1:', '127.0.0.1:65536', '::1:80', '[::1:80', '[10.0.0.1]:80', '1.2.3.4:http'])('%s is refused with the flag named', (text) => {
  expect(() => parseListenAddress(text)).toThrow(/^--http '/);
});
