package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ApiVersions: v0-3.
//
// Lists every key and version range in servedAPIs. A client asking a newer
// version than we serve gets a v0 answer with UNSUPPORTED_VERSION that
// still carries the ranges, so that it can retry lower (librdkafka does).
func init() { serve(18, 0, 3, handleAPIVersions) }

func handleAPIVersions(b *Broker, req *request) {
	resp := apiVersionsResponse(req.version)
	req.respond(resp)
}

func apiVersionsResponse(version int16) *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	r, _ := servedRange(18)
	if version > r.max {
		version = 0
		resp.ErrorCode = kerr.UnsupportedVersion.Code
	}
	resp.SetVersion(version)
	for _, api := range servedAPIs {
		resp.ApiKeys = append(resp.ApiKeys, kmsg.ApiVersionsResponseApiKey{
			ApiKey: api.key, MinVersion: api.min, MaxVersion: api.max,
		})
	}
	return resp
}
