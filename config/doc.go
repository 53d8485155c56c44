// Package config reads an Edge-LB V2 pool configuration: the JSON body of
// `dcos edgelb create pool.json`, which edgeproxy accepts unchanged.
//
// [Parse] decodes strictly (an unknown field is an error naming its JSON
// path), fills every default that Edge-LB's V2 swagger and reference
// document, and validates the pool the way Edge-LB's API server does, plus
// the rules edgeproxy needs because it binds the listeners itself. It reports
// all problems at once, in document order, as [Errors].
//
// The raw HAProxy strings of the schema (frontends[].miscStrs,
// frontends[].bindModifier, backends[].miscStrs, backends[].customCheck,
// endpoint.miscStr, endpoint.check.customStr, rewriteHttp.sticky.customStr)
// are not passed to any HAProxy. Parse understands a small, common subset
// (timeouts, retries, balance, weights, health-check tuning, HTTP checks,
// PROXY protocol) and rejects everything else by name. The results are
// computed once and read through [Frontend.Options], [Backend.Options] and
// [Service.Server].
//
// Fields that parse but that edgeproxy does not act on yet are listed by
// [Pool.Unsupported]; they are warnings, not errors.
//
// The package is pure: bytes in, a validated value or errors out. It does no
// network or file I/O apart from [ParseFile].
package config
