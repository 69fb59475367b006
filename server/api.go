package server

import "time"

// Status is the body of GET /status.
type Status struct {
	Name          string    `json:"name"`
	Version       string    `json:"version"`
	Role          string    `json:"role"`
	StartedAt     time.Time `json:"started_at"`
	UptimeSeconds float64   `json:"uptime_seconds"`
}

// ErrorResponse is the body of every 4xx and 5xx answer.
type ErrorResponse struct {
	Error string `json:"error"`
}
