// Node-RED settings for the benchmark: loopback only, no editor, no network calls of its own.
// The harness sets RW_BENCH_NR_PORT and RW_BENCH_FLOW_FILE (a copy of flow.json in the trial's directory).
module.exports = {
    uiHost: "127.0.0.1",
    uiPort: Number(process.env.RW_BENCH_NR_PORT || 1880),
    flowFile: process.env.RW_BENCH_FLOW_FILE,
    credentialSecret: false,
    httpAdminRoot: false,
    httpNodeRoot: false,
    disableEditor: true,
    externalModules: { autoInstall: false, palette: { allowInstall: false } },
    diagnostics: { enabled: false, ui: false },
    runtimeState: { enabled: false, ui: false },
    telemetry: { enabled: false },
    editorTheme: { tours: false, projects: { enabled: false } },
    functionExternalModules: false,
    logging: { console: { level: "info", metrics: false, audit: false } },
};
