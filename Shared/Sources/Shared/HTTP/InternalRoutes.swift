import Hummingbird

extension Router<AppRequestContext> {
    /// The `/internal` group: routes for other services only. Every request needs a valid
    /// service credential; handlers get the calling service in `ServiceContext`.
    public func internalRoutes(credentials: ServiceCredentials) -> RouterGroup<ServiceContext> {
        group("internal")
            .add(middleware: ServiceAuthMiddleware(credentials: credentials))
            .group(context: ServiceContext.self)
    }
}
