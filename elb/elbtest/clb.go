package elbtest

import (
	"net/url"
	"time"
)

// Classic Load Balancer API, version 2012-06-01.

type instanceXML struct {
	InstanceId string
}

type instancesResult struct {
	Instances []instanceXML `xml:"Instances>member"`
}

type instanceStateXML struct {
	Description string
	InstanceId  string
	State       string
	ReasonCode  string
}

type describeInstanceHealthResult struct {
	InstanceStates []instanceStateXML `xml:"InstanceStates>member"`
}

type lbAttributesXML struct {
	CrossZoneLoadBalancing struct{ Enabled bool }
	ConnectionDraining     struct {
		Enabled bool
		Timeout int
	}
	ConnectionSettings struct{ IdleTimeout int }
	AccessLog          struct{ Enabled bool }
}

type describeLBAttributesResult struct {
	LoadBalancerAttributes lbAttributesXML
}

type lbDescriptionXML struct {
	LoadBalancerName  string
	DNSName           string
	Scheme            string
	AvailabilityZones []string      `xml:"AvailabilityZones>member"`
	Instances         []instanceXML `xml:"Instances>member"`
}

type describeLoadBalancersResult struct {
	LoadBalancerDescriptions []lbDescriptionXML `xml:"LoadBalancerDescriptions>member"`
}

func (s *Server) clbAction(action string, form url.Values) (any, *apiError) {
	switch action {
	case "RegisterInstancesWithLoadBalancer", "DeregisterInstancesFromLoadBalancer",
		"DescribeInstanceHealth", "DescribeLoadBalancerAttributes":
	case "DescribeLoadBalancers":
		return s.describeLoadBalancers(form)
	default:
		return nil, errf("InvalidAction", "Could not find operation %s for version %s", action, versionCLB)
	}
	name := form.Get("LoadBalancerName")
	if name == "" {
		return nil, errf("ValidationError", "1 validation error detected: Value null at 'loadBalancerName' failed to satisfy constraint: Member must not be null")
	}
	lb, ok := s.clbs[name]
	if !ok {
		return nil, errf("LoadBalancerNotFound", "There is no ACTIVE Load Balancer named '%s'", name)
	}
	now := s.opts.Now()
	var ids []string
	for _, m := range members(form, "Instances") {
		ids = append(ids, m["InstanceId"])
	}
	switch action {
	case "RegisterInstancesWithLoadBalancer", "DeregisterInstancesFromLoadBalancer":
		if len(ids) == 0 {
			return nil, errf("ValidationError", "1 validation error detected: Value null at 'instances' failed to satisfy constraint: Member must not be null")
		}
		for _, id := range ids {
			if !s.instances[id] {
				return nil, errf("InvalidInstance", "EC2 instance %s is not valid", id)
			}
		}
		for _, id := range ids {
			if action == "RegisterInstancesWithLoadBalancer" {
				lb.register(id, now)
			} else if r, ok := lb.instances[id]; ok && r.drainUntil.IsZero() {
				lb.deregister(r, now)
			}
		}
		return instancesResult{Instances: lb.active(now)}, nil
	case "DescribeInstanceHealth":
		return describeInstanceHealth(s, lb, ids, now)
	}
	// DescribeLoadBalancerAttributes
	var a lbAttributesXML
	a.CrossZoneLoadBalancing.Enabled = true
	a.ConnectionDraining.Enabled = lb.cfg.ConnectionDraining
	a.ConnectionDraining.Timeout = int(lb.cfg.DrainingTimeout / time.Second)
	a.ConnectionSettings.IdleTimeout = int(lb.cfg.IdleTimeout / time.Second)
	return describeLBAttributesResult{LoadBalancerAttributes: a}, nil
}

// active lists the registered instances that are not draining.
func (c *clb) active(now time.Time) []instanceXML {
	var out []instanceXML
	for _, r := range c.live(now) {
		if r.drainUntil.IsZero() {
			out = append(out, instanceXML{InstanceId: r.id})
		}
	}
	return out
}

func describeInstanceHealth(s *Server, lb *clb, ids []string, now time.Time) (any, *apiError) {
	live := lb.live(now)
	var res describeInstanceHealthResult
	if len(ids) == 0 {
		for _, r := range live {
			st, desc, reason := lb.health(r, now)
			res.InstanceStates = append(res.InstanceStates, instanceStateXML{Description: desc, InstanceId: r.id, State: st, ReasonCode: reason})
		}
		return res, nil
	}
	for _, id := range ids {
		if !s.instances[id] {
			return nil, errf("InvalidInstance", "Could not find EC2 instance %s.", id)
		}
		r, ok := lb.instances[id]
		if !ok {
			res.InstanceStates = append(res.InstanceStates, instanceStateXML{
				Description: "Instance is not currently registered with the LoadBalancer.",
				InstanceId:  id, State: "OutOfService", ReasonCode: "N/A",
			})
			continue
		}
		st, desc, reason := lb.health(r, now)
		res.InstanceStates = append(res.InstanceStates, instanceStateXML{Description: desc, InstanceId: id, State: st, ReasonCode: reason})
	}
	return res, nil
}

func (s *Server) describeLoadBalancers(form url.Values) (any, *apiError) {
	var names []string
	for _, m := range members(form, "LoadBalancerNames") {
		names = append(names, m[""])
	}
	if len(names) == 0 {
		for n := range s.clbs {
			names = append(names, n)
		}
	}
	now := s.opts.Now()
	var res describeLoadBalancersResult
	for _, n := range names {
		lb, ok := s.clbs[n]
		if !ok {
			return nil, errf("LoadBalancerNotFound", "There is no ACTIVE Load Balancer named '%s'", n)
		}
		res.LoadBalancerDescriptions = append(res.LoadBalancerDescriptions, lbDescriptionXML{
			LoadBalancerName:  n,
			DNSName:           n + "-1234567890." + s.opts.Region + ".elb.amazonaws.com",
			Scheme:            "internet-facing",
			AvailabilityZones: lb.cfg.AvailabilityZones,
			Instances:         lb.active(now),
		})
	}
	return res, nil
}
