import { Component, type ErrorInfo, type ReactNode } from "react";

interface Props {
  children: ReactNode;
}

/** A rendering bug shows a message and a way out instead of a blank page. */
export class ErrorBoundary extends Component<Props, { error: Error | null }> {
  state = { error: null as Error | null };

  static getDerivedStateFromError(error: Error) {
    return { error };
  }

  componentDidCatch(error: Error, info: ErrorInfo) {
    console.error("gpuops web: render error", error, info.componentStack);
  }

  render() {
    if (this.state.error) {
      return (
        <div className="state state-error" role="alert" data-testid="render-error">
          <strong>This page failed to render.</strong> {this.state.error.message}{" "}
          <button type="button" className="button" onClick={() => window.location.assign("/")}>
            Back to the overview
          </button>
        </div>
      );
    }
    return this.props.children;
  }
}
