package discovery

import "encoding/json"

// eventFields are the parts of a Marathon event payload that say what it
// concerns (core/event/Events.scala; event-bus.md).
type eventFields struct {
	EventType     string `json:"eventType"`
	AppID         string `json:"appId"`     // status_update, health_status_changed, app_terminated, ...
	RunSpecID     string `json:"runSpecId"` // instance_* events
	AppDefinition *struct {
		ID string `json:"id"`
	} `json:"appDefinition"` // api_post_event
	ID   string `json:"id"` // deployment_success / deployment_failed
	Plan *struct {
		ID    string `json:"id"`
		Steps []struct {
			App     string        `json:"app"` // event-bus.md's flat form
			Actions []eventAction `json:"actions"`
		} `json:"steps"`
	} `json:"plan"` // deployment_info / deployment_step_* (and deployment_success on 1.x)
	CurrentStep *struct {
		Actions []eventAction `json:"actions"`
	} `json:"currentStep"`
}

type eventAction struct {
	App string `json:"app"`
}

func jsonEventType(data []byte) string {
	var f eventFields
	if json.Unmarshal(data, &f) != nil {
		return ""
	}
	return f.EventType
}

// eventTargets returns the apps an event names, and the deployment it is
// about: plan.id for events with a plan, id for deployment_success/failed.
// Both are empty for events that name nothing (or do not decode).
func eventTargets(data []byte) (apps []string, deploymentID string) {
	var f eventFields
	if json.Unmarshal(data, &f) != nil {
		return nil, ""
	}
	add := func(id string) {
		if id != "" {
			apps = append(apps, absID(id))
		}
	}
	add(f.AppID)
	add(f.RunSpecID)
	if f.AppDefinition != nil {
		add(f.AppDefinition.ID)
	}
	deploymentID = f.ID
	if f.Plan != nil {
		deploymentID = f.Plan.ID
		for _, s := range f.Plan.Steps {
			add(s.App)
			for _, a := range s.Actions {
				add(a.App)
			}
		}
	}
	if f.CurrentStep != nil {
		for _, a := range f.CurrentStep.Actions {
			add(a.App)
		}
	}
	return apps, deploymentID
}
