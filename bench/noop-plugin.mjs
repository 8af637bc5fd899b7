// A plugin whose four hooks do nothing: `npm run bench -- plugins` measures what the plugin chain itself costs.
export default {
  name: 'noop',
  create() {
    return {
      onRequest() {},
      onUpstreamRequest() {},
      onResponse() {},
      onLog() {},
    };
  },
};
