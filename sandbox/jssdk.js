// The sandbox's stand-in for WeCom's JS-SDK (window.wx) in a browser test: wx.agentConfig is
// checked by the sandbox as WeCom checks it (the signature over this page's URL with a ticket it
// issued, the corp's agentid); then wx.invoke answers getContext, getCurExternalContact and
// getCurExternalChat with the chat the test opened (POST /sandbox/corps/{corp}/client).
(() => {
  const SANDBOX = "{{SANDBOX}}";
  let corp = null;
  const fail = (name, why) => ({ err_msg: `${name}:${why}` });
  window.wx = {
    config() {}, ready(fn) { fn(); }, error() {},
    agentConfig(cfg) {
      const q = new URLSearchParams({ agentid: String(cfg.agentid ?? ""), timestamp: String(cfg.timestamp),
        noncestr: cfg.nonceStr, signature: cfg.signature, url: location.href.split("#")[0] });
      fetch(`${SANDBOX}/sandbox/corps/${encodeURIComponent(cfg.corpid)}/jssdk/check?${q}`)
        .then((r) => r.json())
        .then((res) => { if (res.ok) { corp = cfg.corpid; cfg.success?.({ errMsg: "agentConfig:ok" }); }
                         else cfg.fail?.({ errMsg: `agentConfig:fail ${res.reason}` }); })
        .catch((e) => cfg.fail?.({ errMsg: `agentConfig:fail ${e}` }));
    },
    invoke(name, _args, callback) {
      if (!corp) return callback(fail(name, "permission denied"));
      fetch(`${SANDBOX}/sandbox/corps/${encodeURIComponent(corp)}/client`).then((r) => r.json()).then((c) => {
        if (name === "getContext") return callback({ err_msg: "getContext:ok", entry: c.chat_id ? "group_chat_tools" : "single_chat_tools" });
        if (name === "getCurExternalContact" && c.external_userid) return callback({ err_msg: `${name}:ok`, userId: c.external_userid });
        if (name === "getCurExternalChat" && c.chat_id) return callback({ err_msg: `${name}:ok`, chatId: c.chat_id });
        return callback(fail(name, "fail"));
      });
    },
  };
})();
