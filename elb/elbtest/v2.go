package elbtest

import (
	"net/url"
	"strconv"
)

// ALB/NLB target group API, version 2015-12-01.

type matcherXML struct{ HttpCode string }

type targetGroupXML struct {
	TargetGroupArn             string
	TargetGroupName            string
	Protocol                   string
	Port                       int
	VpcId                      string
	HealthCheckProtocol        string
	HealthCheckPort            string
	HealthCheckEnabled         bool
	HealthCheckIntervalSeconds int
	HealthCheckTimeoutSeconds  int
	HealthyThresholdCount      int
	UnhealthyThresholdCount    int
	HealthCheckPath            string      `xml:",omitempty"`
	Matcher                    *matcherXML `xml:",omitempty"`
	LoadBalancerArns           []string    `xml:"LoadBalancerArns>member"`
	TargetType                 string
	IpAddressType              string
}

type describeTargetGroupsResult struct {
	TargetGroups []targetGroupXML `xml:"TargetGroups>member"`
}

type attributeXML struct{ Key, Value string }

type describeTGAttributesResult struct {
	Attributes []attributeXML `xml:"Attributes>member"`
}

type targetXML struct {
	Id               string
	Port             int    `xml:",omitempty"`
	AvailabilityZone string `xml:",omitempty"`
}

type targetHealthXML struct {
	State       string
	Reason      string `xml:",omitempty"`
	Description string `xml:",omitempty"`
}

type targetHealthDescriptionXML struct {
	Target          targetXML
	HealthCheckPort string
	TargetHealth    targetHealthXML
}

type describeTargetHealthResult struct {
	TargetHealthDescriptions []targetHealthDescriptionXML `xml:"TargetHealthDescriptions>member"`
}

type emptyResult struct{}

func (s *Server) v2Action(action string, form url.Values) (any, *apiError) {
	switch action {
	case "DescribeTargetGroups":
		return s.describeTargetGroups(form)
	case "RegisterTargets", "DeregisterTargets", "DescribeTargetHealth", "DescribeTargetGroupAttributes":
	default:
		return nil, errf("InvalidAction", "Could not find operation %s for version %s", action, versionV2)
	}
	arn := form.Get("TargetGroupArn")
	if arn == "" {
		return nil, errf("ValidationError", "A target group ARN must be specified")
	}
	tg, ok := s.tgs[arn]
	if !ok {
		return nil, errf("TargetGroupNotFound", "Target groups '%s' not found", arn)
	}
	now := s.opts.Now()
	if action == "DescribeTargetGroupAttributes" {
		return describeTGAttributesResult{Attributes: []attributeXML{
			{"deregistration_delay.timeout_seconds", seconds(tg.cfg.DeregistrationDelay)},
			{"deregistration_delay.connection_termination.enabled", "false"},
			{"proxy_protocol_v2.enabled", strconv.FormatBool(tg.cfg.ProxyProtocolV2)},
			{"stickiness.enabled", "false"},
		}}, nil
	}
	type target struct {
		id, az string
		port   int // 0: not given
	}
	var targets []target
	for _, m := range members(form, "Targets") {
		t := target{id: m["Id"], az: m["AvailabilityZone"]}
		if p := m["Port"]; p != "" {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 65535 {
				return nil, errf("ValidationError", "Port '%s' must be between 1 and 65535", p)
			}
			t.port = n
		}
		if t.id == "" {
			return nil, errf("ValidationError", "A target ID must be specified")
		}
		if code, msg := s.validTarget(tg, t.id, action); code != "" {
			return nil, errf(code, "%s", msg)
		}
		targets = append(targets, t)
	}
	switch action {
	case "RegisterTargets", "DeregisterTargets":
		if len(targets) == 0 {
			return nil, errf("ValidationError", "1 validation error detected: Value null at 'targets' failed to satisfy constraint: Member must not be null")
		}
		for _, t := range targets {
			port := t.port
			if port == 0 {
				port = tg.cfg.Port
			}
			if action == "RegisterTargets" {
				tg.register(t.id, port, t.az, now)
				continue
			}
			// "If the specified target does not exist, the action returns
			// successfully."
			for _, r := range tg.live(now) {
				if r.id == t.id && r.port == port && r.drainUntil.IsZero() {
					tg.deregister(r, now)
				}
			}
		}
		return emptyResult{}, nil
	}
	// DescribeTargetHealth
	live := tg.live(now)
	var res describeTargetHealthResult
	add := func(r *registration) {
		st, reason, desc := tg.health(r, now)
		res.TargetHealthDescriptions = append(res.TargetHealthDescriptions, targetHealthDescriptionXML{
			Target:          targetXML{Id: r.id, Port: r.port, AvailabilityZone: r.az},
			HealthCheckPort: strconv.Itoa(r.port),
			TargetHealth:    targetHealthXML{State: st, Reason: reason, Description: desc},
		})
	}
	if len(targets) == 0 {
		for _, r := range live {
			add(r)
		}
		return res, nil
	}
	for _, t := range targets {
		found := false
		for _, r := range live {
			if r.id == t.id && (t.port == 0 || r.port == t.port) {
				add(r)
				found = true
			}
		}
		if !found {
			port := t.port
			if port == 0 {
				port = tg.cfg.Port
			}
			res.TargetHealthDescriptions = append(res.TargetHealthDescriptions, targetHealthDescriptionXML{
				Target:          targetXML{Id: t.id, Port: port},
				HealthCheckPort: strconv.Itoa(port),
				TargetHealth: targetHealthXML{State: "unused", Reason: "Target.NotRegistered",
					Description: "Target is not registered to the target group"},
			})
		}
	}
	return res, nil
}

func (s *Server) describeTargetGroups(form url.Values) (any, *apiError) {
	var arns []string
	for _, m := range members(form, "TargetGroupArns") {
		arns = append(arns, m[""])
	}
	names := map[string]bool{}
	for _, m := range members(form, "Names") {
		names[m[""]] = true
	}
	if len(arns) == 0 {
		for _, a := range s.tgOrder {
			if len(names) == 0 || names[s.tgs[a].cfg.Name] {
				arns = append(arns, a)
				delete(names, s.tgs[a].cfg.Name)
			}
		}
		if len(names) > 0 {
			return nil, errf("TargetGroupNotFound", "One or more target groups not found")
		}
	}
	var res describeTargetGroupsResult
	for _, a := range arns {
		tg, ok := s.tgs[a]
		if !ok {
			return nil, errf("TargetGroupNotFound", "One or more target groups not found")
		}
		x := targetGroupXML{
			TargetGroupArn:             tg.arn,
			TargetGroupName:            tg.cfg.Name,
			Protocol:                   tg.cfg.Protocol,
			Port:                       tg.cfg.Port,
			VpcId:                      "vpc-0123456789abcdef0",
			HealthCheckProtocol:        tg.cfg.Protocol,
			HealthCheckPort:            "traffic-port",
			HealthCheckEnabled:         true,
			HealthCheckIntervalSeconds: 30,
			HealthCheckTimeoutSeconds:  5,
			HealthyThresholdCount:      5,
			UnhealthyThresholdCount:    2,
			LoadBalancerArns:           []string{tg.lbARN},
			TargetType:                 tg.cfg.TargetType,
			IpAddressType:              "ipv4",
		}
		if tg.cfg.LoadBalancerType == "network" {
			x.HealthCheckProtocol = "TCP"
			x.HealthyThresholdCount = 3
		} else {
			x.HealthCheckPath = "/"
			x.Matcher = &matcherXML{HttpCode: "200"}
		}
		res.TargetGroups = append(res.TargetGroups, x)
	}
	return res, nil
}
