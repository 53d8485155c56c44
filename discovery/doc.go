// Package discovery turns Edge-LB service selectors into live sets of backend
// endpoints read from Marathon.
//
// It has three layers, each usable on its own:
//
//   - Resolve is a pure function from decoded Marathon apps (with embedded
//     tasks) and a Selector to a sorted []Endpoint. It follows Marathon's own
//     port-assignment rule (NetworkInfo.computePortAssignments): host
//     networking reads task.ports by portDefinitions index, container/bridge
//     and container networking walk container.portMappings with a cursor over
//     the mappings that have a hostPort, and a mapping without hostPort is
//     reached at the task's first container IP and its containerPort.
//   - Client talks to one or more Marathon instances: the /v2/apps snapshot
//     and the /v2/events server-sent-event stream, with HTTP basic or DC/OS
//     service-account authentication, leader redirects that keep the
//     credentials, and fail-over across the configured URLs.
//   - Watcher keeps registered selectors up to date. Events are used only as
//     cache invalidation (Marathon does not order them): a relevant event
//     schedules a debounced re-fetch of /v2/apps, every (re)connect of the
//     stream and a periodic timer force a full resync, and callbacks get the
//     full new set only when it changed. While Marathon is away or answers
//     garbage the last good sets stay in place.
//
// The design favours a full re-fetch over incremental patching because it is
// obviously correct under reordered, duplicated or lost events; the cost is
// one /v2/apps request per debounce window during churn.
package discovery
