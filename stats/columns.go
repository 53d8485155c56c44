package stats

// The columns of HAProxy 2.6's CSV statistics ("show stat", and the stats
// page with ";csv"), in order. Fields 0 to 102 are the static fields of the
// proxy domain listed in section 9.1 of the HAProxy 2.6 management guide
// (2.6 renamed field 100 to agg_server_status and added 101 and 102). The
// "-" column ends the static fields; after it come the extra counters of the
// modules a stock 2.6 build registers on proxies: ssl, h2, then h1 (128
// columns in all, as Debian's 2.6.12 prints them).
//
// Tools read these columns by position as well as by name, so none may be
// added, removed or moved.
const (
	colPxname                       = iota // proxy name
	colSvname                              // FRONTEND, BACKEND or the server name
	colQcur                                // queued requests
	colQmax                                // max qcur
	colScur                                // current sessions
	colSmax                                // max scur
	colSlim                                // session limit
	colStot                                // cumulative sessions
	colBin                                 // bytes in
	colBout                                // bytes out
	colDreq                                // requests denied by rules
	colDresp                               // responses denied by rules
	colEreq                                // request errors
	colEcon                                // connection errors
	colEresp                               // response errors
	colWretr                               // connection retries
	colWredis                              // redispatches
	colStatus                              // OPEN, UP, DOWN, DRAIN, MAINT, ...
	colWeight                              // effective weight
	colAct                                 // active servers / server is active
	colBck                                 // backup servers / server is backup
	colChkfail                             // failed checks
	colChkdown                             // UP to DOWN transitions
	colLastchg                             // seconds since the last transition
	colDowntime                            // total downtime in seconds
	colQlimit                              // maxqueue
	colPid                                 // relative process number
	colIid                                 // proxy id
	colSid                                 // server id
	colThrottle                            // slow-start throttle percentage
	colLbtot                               // times a server was selected
	colTracked                             // tracked proxy/server id
	colType                                // 0 frontend, 1 backend, 2 server, 3 listener
	colRate                                // sessions over the last second
	colRateLim                             // session rate limit
	colRateMax                             // max rate
	colCheckStatus                         // last health check status
	colCheckCode                           // last health check layer 5-7 code
	colCheckDuration                       // last health check duration, ms
	colHrsp1xx                             // responses by status class
	colHrsp2xx                             //
	colHrsp3xx                             //
	colHrsp4xx                             //
	colHrsp5xx                             //
	colHrspOther                           //
	colHanafail                            // failed health check details
	colReqRate                             // HTTP requests over the last second
	colReqRateMax                          // max req_rate
	colReqTot                              // HTTP requests
	colCliAbrt                             // transfers aborted by the client
	colSrvAbrt                             // transfers aborted by the server
	colCompIn                              // compression
	colCompOut                             //
	colCompByp                             //
	colCompRsp                             //
	colLastsess                            // seconds since the last session
	colLastChk                             // last health check output
	colLastAgt                             // last agent check output
	colQtime                               // average queue time, ms
	colCtime                               // average connect time, ms
	colRtime                               // average response time, ms
	colTtime                               // average total time, ms
	colAgentStatus                         // agent checks
	colAgentCode                           //
	colAgentDuration                       //
	colCheckDesc                           // health check status in words
	colAgentDesc                           //
	colCheckRise                           // health check rise, fall, health
	colCheckFall                           //
	colCheckHealth                         //
	colAgentRise                           //
	colAgentFall                           //
	colAgentHealth                         //
	colAddr                                // server address (with show-legends)
	colCookie                              // cookie (with show-legends)
	colMode                                // tcp or http
	colAlgo                                // balancing algorithm (with show-legends)
	colConnRate                            // connections over the last second
	colConnRateMax                         // max conn_rate
	colConnTot                             // cumulative connections
	colIntercepted                         // requests answered by stats or monitor
	colDcon                                // connections denied by rules
	colDses                                // sessions denied by rules
	colWrew                                // failed header rewrites
	colConnect                             // connection attempts
	colReuse                               // connection reuses
	colCacheLookups                        // cache
	colCacheHits                           //
	colSrvIcur                             // idle connections available for reuse
	colSrvIlim                             // idle connection limit
	colQtimeMax                            // max queue/connect/response/total time
	colCtimeMax                            //
	colRtimeMax                            //
	colTtimeMax                            //
	colEint                                // internal errors
	colIdleConnCur                         // unsafe idle connections
	colSafeConnCur                         // safe idle connections
	colUsedConnCur                         // connections in use
	colNeedConnEst                         // estimated connections needed
	colUweight                             // user weight
	colAggServerStatus                     // 2.6: aggregated server status
	colAggServerCheckStatus                // 2.6: same, deprecated name
	colAggCheckStatus                      // 2.6: aggregated check status
	colDash                                // "-": end of the static fields
	colSSLSess                             // ssl module
	colSSLReusedSess                       //
	colSSLFailedHandshake                  //
	colH2HeadersRcvd                       // h2 module
	colH2DataRcvd                          //
	colH2SettingsRcvd                      //
	colH2RstStreamRcvd                     //
	colH2GoawayRcvd                        //
	colH2DetectedConnProtocolErrors        //
	colH2DetectedStrmProtocolErrors        //
	colH2RstStreamResp                     //
	colH2GoawayResp                        //
	colH2OpenConnections                   //
	colH2BackendOpenStreams                //
	colH2TotalConnections                  //
	colH2BackendTotalStreams               //
	colH1OpenConnections                   // h1 module
	colH1OpenStreams                       //
	colH1TotalConnections                  //
	colH1TotalStreams                      //
	colH1BytesIn                           //
	colH1BytesOut                          //
	colH1SplicedBytesIn                    //
	colH1SplicedBytesOut                   //
	numColumns
)

// columnNames are the CSV header names, indexed by the col constants.
var columnNames = [numColumns]string{
	"pxname", "svname", "qcur", "qmax", "scur", "smax", "slim", "stot",
	"bin", "bout", "dreq", "dresp", "ereq", "econ", "eresp", "wretr",
	"wredis", "status", "weight", "act", "bck", "chkfail", "chkdown",
	"lastchg", "downtime", "qlimit", "pid", "iid", "sid", "throttle",
	"lbtot", "tracked", "type", "rate", "rate_lim", "rate_max",
	"check_status", "check_code", "check_duration", "hrsp_1xx",
	"hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other",
	"hanafail", "req_rate", "req_rate_max", "req_tot", "cli_abrt",
	"srv_abrt", "comp_in", "comp_out", "comp_byp", "comp_rsp", "lastsess",
	"last_chk", "last_agt", "qtime", "ctime", "rtime", "ttime",
	"agent_status", "agent_code", "agent_duration", "check_desc",
	"agent_desc", "check_rise", "check_fall", "check_health", "agent_rise",
	"agent_fall", "agent_health", "addr", "cookie", "mode", "algo",
	"conn_rate", "conn_rate_max", "conn_tot", "intercepted", "dcon", "dses",
	"wrew", "connect", "reuse", "cache_lookups", "cache_hits", "srv_icur",
	"src_ilim", "qtime_max", "ctime_max", "rtime_max", "ttime_max", "eint",
	"idle_conn_cur", "safe_conn_cur", "used_conn_cur", "need_conn_est",
	"uweight", "agg_server_status", "agg_server_check_status",
	"agg_check_status", "-",
	"ssl_sess", "ssl_reused_sess", "ssl_failed_handshake",
	"h2_headers_rcvd", "h2_data_rcvd", "h2_settings_rcvd",
	"h2_rst_stream_rcvd", "h2_goaway_rcvd",
	"h2_detected_conn_protocol_errors", "h2_detected_strm_protocol_errors",
	"h2_rst_stream_resp", "h2_goaway_resp", "h2_open_connections",
	"h2_backend_open_streams", "h2_total_connections",
	"h2_backend_total_streams",
	"h1_open_connections", "h1_open_streams", "h1_total_connections",
	"h1_total_streams", "h1_bytes_in", "h1_bytes_out",
	"h1_spliced_bytes_in", "h1_spliced_bytes_out",
}

// columnIndex maps a column name to its index, for the HTML template.
var columnIndex = func() map[string]int {
	m := make(map[string]int, numColumns)
	for i, n := range columnNames {
		m[n] = i
	}
	return m
}()
