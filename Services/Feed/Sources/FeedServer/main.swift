import FeedService
import Shared

// Reads configuration from the environment (names in the README) and runs until SIGTERM.
await ServiceMain.run(FeedConfiguration.self, buildApplication(configuration:logger:))
