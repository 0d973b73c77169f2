-- AlterTable
ALTER TABLE "VirtualLive" ADD COLUMN     "maxReconnectAttempts" INTEGER,
ADD COLUMN     "nextAttemptAt" TIMESTAMP(3),
ADD COLUMN     "reconnectAttempts" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "rtspTransport" TEXT NOT NULL DEFAULT 'TCP';
