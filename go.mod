module github.com/pagarme/teleport

go 1.26.8

require (
	github.com/gorilla/mux v1.8.1
	github.com/lib/pq v1.12.3
	gopkg.in/yaml.v2 v2.4.0
)
