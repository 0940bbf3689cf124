// The console's words in Chinese and English (the operators' terms: shared/docs/glossary.md).
// One line per key with both languages, so neither can lack a key the other has. A key asked for
// that is not here is shown as itself and noted in window.__missingStrings (the browser tests check it).
const S = {
  brand: ["SCRM console", "SCRM 控制台"],
  language: ["Language", "语言"],
  loading: ["Loading…", "加载中…"],
  sign_in: ["Sign in", "登录"],
  sign_out: ["Sign out", "退出登录"],
  sign_in_title: ["Sign in to the console", "登录控制台"],
  sign_in_intro: ["Use your corp's API key (or the admin key). It is kept in this browser tab only and forgotten when the tab closes.",
    "使用企业的 API 密钥（或管理员密钥）。密钥只保存在当前浏览器标签页中，关闭标签页即清除。"],
  api_key: ["API key", "API 密钥"],
  api_key_hint: ["scrm_… (from `make run`, or POST /api/v1/corps/{corp_id}/api-keys)", "scrm_…（见 `make run` 输出，或 POST /api/v1/corps/{corp_id}/api-keys）"],
  api_key_missing: ["Enter an API key", "请输入 API 密钥"],
  role_corp: ["corp key", "企业密钥"],
  role_admin: ["admin key", "管理员密钥"],
  nav_dashboard: ["Dashboard", "数据看板"],
  nav_channel_codes: ["Channel codes", "渠道活码"],
  nav_group_codes: ["Group codes", "群活码"],
  nav_customers: ["Customers", "客户"],
  nav_groups: ["Groups", "客户群"],
  nav_segments: ["Segments", "人群"],
  nav_broadcasts: ["Broadcasts", "群发"],
  nav_sop: ["SOP calendars", "SOP / 群日历"],
  nav_handovers: ["Handovers & churn", "离职继承与流失"],
  nav_syncs: ["Sync jobs", "同步任务"],
  nav_dead_letters: ["Dead letters", "死信队列"],
  any: ["any", "全部"],
  no_rows: ["Nothing yet.", "暂无数据。"],
  more: ["More", "加载更多"],
  create: ["Create", "创建"],
  save: ["Save", "保存"],
  edit: ["Edit", "编辑"],
  search: ["Search", "搜索"],
  show: ["Show", "查看"],
  cancel: ["Cancel", "取消"],
  comma_list: ["separate with commas", "以逗号分隔"],
  name: ["Name", "名称"],
  status: ["Status", "状态"],
  state: ["State (渠道参数)", "渠道参数 state"],
  state_hint: ["optional; generated if empty", "可选；留空自动生成"],
  updated_at: ["Updated", "更新时间"],
  key: ["Day / code / staff", "日期 / 渠道 / 员工"],
  total: ["Total", "合计"],
  // dashboard
  from: ["From", "开始日期"],
  to: ["To", "结束日期"],
  split_by: ["Split by", "拆分维度"],
  by_day: ["day", "按天"],
  by_channel: ["channel code", "按渠道活码"],
  by_staff: ["staff member", "按员工"],
  by_group_code: ["group code", "按群活码"],
  stats_contacts: ["Customers added and lost", "客户增减"],
  stats_groups: ["Group joins and quits", "入群与退群"],
  show_numbers: ["Show the numbers", "查看数据"],
  m_adds: ["added", "新增客户"],
  m_lost: ["lost", "流失客户"],
  m_removed: ["removed", "删除客户"],
  m_net: ["net", "净增"],
  m_welcomes_sent: ["welcomes sent", "欢迎语已发送"],
  m_joins: ["joins", "入群"],
  m_quits: ["quits", "退群"],
  m_groups_opened: ["groups opened", "新建群"],
  m_planned: ["planned", "计划发送"],
  m_queued: ["queued", "排队中"],
  m_sent: ["sent", "已发送"],
  m_confirmed: ["confirmed by staff", "员工已确认"],
  m_delivered: ["delivered", "已送达"],
  m_failed: ["failed", "失败"],
  // channel codes
  channel_codes_list: ["Channel codes", "渠道活码列表"],
  create_channel_code: ["New channel code", "新建渠道活码"],
  edit_channel_code: ["Edit channel code", "编辑渠道活码"],
  staff_ids: ["Staff members", "员工"],
  channel_label: ["Channel label", "渠道标签"],
  store: ["Store", "门店"],
  daily_cap: ["Daily cap per staff member", "每位员工每日添加上限"],
  welcome_text: ["Welcome message", "欢迎语"],
  today_vs_cap: ["Today / cap", "今日添加 / 上限"],
  qr_code: ["QR code", "二维码"],
  download_qr: ["Download QR", "下载二维码"],
  // group codes
  group_codes_list: ["Group codes", "群活码列表"],
  create_group_code: ["New group code", "新建群活码"],
  edit_group_code: ["Edit group code", "编辑群活码"],
  pool: ["Groups (chat ids)", "群（chat_id）"],
  threshold: ["Threshold (members)", "换群人数"],
  owner: ["Owner", "群主 / 负责人"],
  rotation: ["rotation", "轮换次数"],
  open_seats: ["open seats", "剩余名额"],
  synced: ["in sync with WeCom", "已同步到企业微信"],
  not_synced: ["not yet in sync with WeCom", "尚未同步到企业微信"],
  // customers
  tag: ["Tag", "标签"],
  tags: ["Tags", "标签"],
  channel_state: ["Channel code (state)", "渠道活码（state）"],
  added_from: ["Added from", "添加起始"],
  added_to: ["Added until", "添加截止"],
  added_at: ["Added", "添加时间"],
  customer_id: ["Customer id", "客户 ID"],
  customer_name: ["Customer", "客户"],
  no_customers: ["No customers match.", "没有符合条件的客户。"],
  profile: ["Profile", "客户资料"],
  relations: ["Relations (staff members)", "跟进员工"],
  edit_tags: ["Edit tags", "编辑标签"],
  tags_add: ["Add a tag", "添加标签"],
  tags_remove: ["Remove a tag", "移除标签"],
  timeline: ["Timeline", "客户动态"],
  s_active: ["active", "正常"],
  s_pending: ["pending", "待通过"],
  s_lost: ["lost", "已流失"],
  s_removed: ["removed", "已删除"],
  s_transferred: ["transferred", "已转接"],
  // groups
  group: ["Group", "客户群"],
  group_code: ["Group code", "群活码"],
  member_count: ["Members", "群人数"],
  members: ["Members", "群成员"],
  member_id: ["Member", "成员"],
  member_type: ["Type", "类型"],
  staff: ["staff member", "员工"],
  customer: ["customer", "客户"],
  joined_at: ["Joined", "入群时间"],
  codes: ["Group codes", "群活码"],
  no_groups: ["No groups match.", "没有符合条件的群。"],
  // segments
  segments_list: ["Segments", "人群列表"],
  create_segment: ["New segment", "新建人群"],
  filter: ["Filter", "筛选条件"],
  live_count: ["Selected now", "当前命中"],
  relations_match: ["relations", "个客户关系"],
  no_segments: ["No segments yet.", "暂无人群。"],
  // broadcasts
  broadcasts_list: ["Broadcasts", "群发列表"],
  compose_broadcast: ["Compose a broadcast", "新建群发"],
  segment: ["Segment", "人群"],
  message_text: ["Message", "消息内容"],
  staff_name_hint: ["{staff_name} is filled in per sender", "{staff_name} 会替换为发送员工的名字"],
  send_at: ["Send at", "发送时间"],
  send_at_hint: ["empty: now", "留空：立即发送"],
  schedule: ["Schedule", "创建群发"],
  no_broadcasts: ["No broadcasts yet.", "暂无群发。"],
  broadcast: ["Broadcast", "群发"],
  progress: ["progress", "进度"],
  excluded: ["Excluded, by reason", "被排除（按原因）"],
  x_capped: ["over the daily cap", "超过每日上限"],
  x_lost_relation: ["relation ended", "好友关系已结束"],
  x_no_sender: ["no sender", "无发送员工"],
  x_not_friend: ["not a friend of the sender", "非发送员工好友"],
  x_over_quota: ["over WeCom's quota", "超过企业微信额度"],
  b_scheduled: ["scheduled", "待发送"],
  b_planning: ["planning", "准备中"],
  b_sending: ["sending", "发送中"],
  b_sent: ["sent", "已发送"],
  b_cancelled: ["cancelled", "已取消"],
  b_failed: ["failed", "失败"],
  cancel_broadcast: ["Cancel this broadcast", "取消群发"],
  recipients: ["Recipients", "接收人"],
  recipient: ["Recipient", "接收人"],
  sender: ["Sender", "发送员工"],
  // syncs
  syncs: ["Full syncs from WeCom", "从企业微信全量同步"],
  start_customer_sync: ["Sync customers", "同步客户"],
  start_group_sync: ["Sync groups", "同步客户群"],
  job_id: ["Job", "任务"],
  kind: ["Kind", "类型"],
  started_at: ["Started", "开始时间"],
  error: ["Error", "错误"],
  no_syncs: ["No syncs yet.", "暂无同步任务。"],
  // dead letters
  dead_letter_queues: ["Dead-letter queues", "死信队列"],
  dead_letters: ["Dead letters", "死信"],
  queue: ["Queue", "队列"],
  dlq: ["DLQ", "死信队列名"],
  look: ["Look", "查看"],
  redrive: ["Redrive", "重新投递"],
  moved: ["moved back", "已重新投递"],
  message_id: ["Message", "消息"],
  reason: ["Reason", "原因"],
  receive_count: ["Receives", "接收次数"],
  body: ["Body", "内容"],
  day: ["Day", "日期"],
};

const LANGS = ["en", "zh"];
const PREF = "scrm.console.lang";  // the language (not the key) is remembered across tabs
let lang = localStorage.getItem(PREF) || (navigator.language || "zh").slice(0, 2);
if (!LANGS.includes(lang)) lang = "zh";
window.__missingStrings = [];

export const STRINGS = S;
export const getLang = () => lang;
export function setLang(value) {
  lang = LANGS.includes(value) ? value : "zh";
  localStorage.setItem(PREF, lang);
}

export function t(key) {
  if (key === "") return "";
  const entry = S[key];
  if (!entry) {
    if (!window.__missingStrings.includes(key)) window.__missingStrings.push(key);
    return key;
  }
  return entry[LANGS.indexOf(lang)];
}

export function translate(root) {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  root.querySelectorAll("[data-t]").forEach((e) => (e.textContent = t(e.dataset.t)));
}
