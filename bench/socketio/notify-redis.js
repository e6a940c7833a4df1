// node-seed's notify.js, unchanged, with @socket.io/redis-adapter attached: the one thing a Node
// deployment adds so that workers in other processes (@socket.io/redis-emitter) reach its sockets.
// bench/socketio.sh's Node row for the Redis path, next to registrar serve --redis-url.
//
//   REDIS_URL=redis://… node notify-redis.js PATH/TO/notify.js    (NODE_PATH: node-seed's node_modules)
//
// notify.js builds its own `new Server(PORT, …)`; rather than copy it, the Server class it takes
// from socket.io is swapped for one that passes the adapter, so the peer's own code is what runs.
'use strict';
const path = require('path');
const sio = require('socket.io'); // through NODE_PATH: the same module (same file) notify.js loads
const Redis = require('ioredis');
const { createAdapter } = require('@socket.io/redis-adapter');

const [notifyJs] = process.argv.slice(2);
if (!notifyJs || !process.env.REDIS_URL) { console.error('usage: REDIS_URL=redis://… node notify-redis.js notify.js'); process.exit(2); }
const pub = new Redis(process.env.REDIS_URL);
const sub = pub.duplicate();
const Base = sio.Server;
class Server extends Base {
  constructor(srv, opts) { super(srv, { ...opts, adapter: createAdapter(pub, sub) }); }
}
sio.Server = Server;
if (require.resolve('socket.io', { paths: [path.dirname(path.resolve(notifyJs))] }) !== require.resolve('socket.io')) {
  console.error('notify-redis.js: notify.js would load another copy of socket.io than NODE_PATH gives');
  process.exit(2);
}
require(path.resolve(notifyJs));
